"""Figures: training curves, predictions, study plots. The one package that imports matplotlib (optional)."""

from xnet.plots.curves import have_matplotlib, image_format, image_formats, plot_histories, plot_prediction

__all__ = ["have_matplotlib", "image_format", "image_formats", "plot_histories", "plot_prediction"]
