# The FPN of CARAFE (Wang et al., ICCV 2019) in place of a detector's FPN: content-aware
# upsampling (5 x 5 reassembly kernels predicted from a 64-channel 3 x 3 encoder) in the
# top-down path, P6 by a stride-2 convolution on C5 (which also feeds the top-down path).
# A config takes it as ``model = dict(neck=dict(_delete_=True, **_base_.fpn_carafe))``.
fpn_carafe = dict(
    type='FPN_CARAFE',
    in_channels=[256, 512, 1024, 2048],
    out_channels=256,
    num_outs=5,
    start_level=0,
    end_level=-1,
    norm_cfg=None,
    act_cfg=None,
    order=('conv', 'norm', 'act'),
    upsample_cfg=dict(
        type='carafe',
        up_kernel=5,
        up_group=1,
        encoder_kernel=3,
        encoder_dilation=1,
        compressed_channels=64,
    ),
)
