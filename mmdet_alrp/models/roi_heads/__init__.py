from .bbox_heads import aLRPBBoxHead

__all__ = ['aLRPBBoxHead']
