"""Writes the synthetic-shapes COCO dataset (see mmdet_alrp.demo.synthetic_shapes).

    python tools/demo/make_demo_data.py [OUT_DIR] [--num-train N] [--num-val N] [--image-size PX]
        [--seed S] [--force]

Does nothing when OUT_DIR already holds the dataset made with the same parameters.
"""

import argparse

from mmdet_alrp.demo.synthetic_shapes import generate_synthetic_shapes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Write the synthetic-shapes COCO dataset')
    parser.add_argument('out_dir', nargs='?', default='data/synthetic_shapes')
    parser.add_argument('--num-train', type=int, default=1000)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--image-size', type=int, default=160)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='write it even if it exists')
    args = parser.parse_args(argv)
    paths = generate_synthetic_shapes(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=args.image_size,
        seed=args.seed,
        force=args.force,
    )
    for key, path in sorted(paths.items()):
        print(f'{key}: {path}')


if __name__ == '__main__':
    main()
