from mmdet.models.dense_heads import NASFCOSHead
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmdet_alrp.models.dense_heads import aLRPFCOSHead


@MODELS.register_module()
class aLRPNASFCOSHead(aLRPFCOSHead, NASFCOSHead):
    """NAS-FCOS trained with aLRP Loss: NASFCOSHead's searched layers, aLRPFCOSHead's loss
    (FCOSHead's targets through the PointRankingAdapter) and forward (no centerness branch)."""

    def __init__(self, *args, init_cfg: OptMultiConfig = None, **kwargs) -> None:
        # NASFCOSHead's default initialisation names conv_centerness, which is not built here
        init_cfg = init_cfg or [
            dict(type='Caffe2Xavier', layer=['ConvModule', 'Conv2d']),
            dict(
                type='Normal',
                std=0.01,
                override=[
                    dict(name='conv_reg'),
                    dict(name='conv_cls', type='Normal', std=0.01, bias_prob=0.01),
                ],
            ),
        ]
        super().__init__(*args, init_cfg=init_cfg, **kwargs)
