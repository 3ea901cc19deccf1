"""Demo-only code, kept apart from the plugin: the built-in synthetic-shapes dataset
(:mod:`.synthetic_shapes`, written by tools/demo/demo.py and tools/demo/make_demo_data.py) and
the pictures and tables of training runs (:mod:`.training_report`, imported on its own: it needs
matplotlib). Nothing here is registered; ``import mmdet_alrp`` does not import it."""

from .synthetic_shapes import CLASSES, METAINFO, generate_synthetic_shapes

__all__ = ['CLASSES', 'METAINFO', 'generate_synthetic_shapes']
