from .synthetic_shapes import CLASSES, METAINFO, generate_synthetic_shapes

__all__ = ['CLASSES', 'METAINFO', 'generate_synthetic_shapes']
