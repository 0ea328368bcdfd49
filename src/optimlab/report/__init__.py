"""The lecture tour as a self-contained HTML report (Jinja2): one section per chapter with its
equations, the experiment's measured numbers and its figures; it opens offline from its folder."""

from .tour import write_tour

__all__ = ["write_tour"]
