"""Figures of the lab (matplotlib, no global pyplot state): contours with paths, 3-D surfaces,
animations, EWMA, schedules, effective learning rates, basin maps and heatmaps."""

from .animation import animate_paths
from .contours import contour_with_paths, surface_3d
from .curves import ewma_figure, lines_figure, schedules_figure
from .export import save
from .maps import basin_map, heatmap

__all__ = [
    "animate_paths",
    "basin_map",
    "contour_with_paths",
    "ewma_figure",
    "heatmap",
    "lines_figure",
    "save",
    "schedules_figure",
    "surface_3d",
]
