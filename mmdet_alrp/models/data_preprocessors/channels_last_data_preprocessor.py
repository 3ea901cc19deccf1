"""mmdet's data preprocessor, with the batch in channels-last memory order."""
import torch

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS


@MODELS.register_module()
class ChannelsLastDetDataPreprocessor(DetDataPreprocessor):
    """:class:`DetDataPreprocessor` whose batch of images is stored channels last (NHWC).

    The values and shape (N, C, H, W) of the batch are those of :class:`DetDataPreprocessor`;
    only the memory order differs. Convolutions, normalisations and pooling then run on their
    channels-last kernels and keep that order down the network (the weights are reordered to
    it by the convolution), which on a CPU is faster than the default order for the small
    channel counts of the demo detector. Arguments as :class:`DetDataPreprocessor`.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """The batch of :meth:`DetDataPreprocessor.forward`, channels last.

        Returns:
            dict: ``inputs``, shape (N, C, H, W), channels-last strides, and ``data_samples``.
        """
        data = super().forward(data, training)
        data['inputs'] = data['inputs'].contiguous(memory_format=torch.channels_last)
        return data
