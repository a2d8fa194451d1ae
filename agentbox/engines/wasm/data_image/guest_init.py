# Guest code: run inside the data image once, at build time, before the snapshot is taken.
# Never imported on the host (the build reads this file as text: INIT_SOURCE).
# Its sha256 is part of the image's name, so a change here makes a new build.
# ruff: noqa: E402  (the runner is prepared before the data stack is imported)
import io

# agentbox's runner (its modules were made importable by the prelude runner_bundle.py puts
# before this file): the door, the shims and the in-memory /tmp matplotlib's config needs.
from agentbox_guest import data_entry

data_entry.prepare()

import matplotlib

matplotlib.use("Agg")

import matplotlib.font_manager
import matplotlib.pyplot as plt
import numpy
import pandas

matplotlib.font_manager.fontManager.ttflist  # noqa: B018  (the font list, built now)

_frame = pandas.DataFrame({"key": [i % 7 for i in range(200)], "value": numpy.arange(200.0)})
_frame.groupby("key")["value"].agg(["mean", "sum", "count"])
_frame.describe()
# What scripts do next: print frames and series (the formatting code), write CSV.
str(_frame.groupby("key")["value"].sum())
str(_frame.describe())
repr(_frame.head())
_frame.to_csv(io.StringIO())
str(numpy.linspace(0.0, 1.0, 7))
del _frame

_figure, _axes = plt.subplots()
_axes.plot([0, 1, 2], [0, 1, 4])
_axes.set_title("warm-up")
_figure.savefig(io.BytesIO(), format="png")
_figure.savefig("/tmp/warm-up.png")  # the file path too (the in-memory /tmp; emptied per run)
plt.close(_figure)
del _figure, _axes

# Open files do not survive a snapshot: forget the fonts FreeType opened.
matplotlib.font_manager._get_font.cache_clear()

# The runner, its run path warmed; the heap frozen.
data_entry.install()
