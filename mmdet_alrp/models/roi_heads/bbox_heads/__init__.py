from .alrp_bbox_head import aLRPBBoxHead

__all__ = ['aLRPBBoxHead']
