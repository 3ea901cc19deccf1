from setuptools import find_packages, setup

setup(
    name='mmdet_alrp',
    version='0.1.0',
    description='aLRP Loss (Oksuz et al., NeurIPS 2020) for MMDetection 3.x',
    packages=find_packages(include=['mmdet_alrp', 'mmdet_alrp.*']),
    python_requires='>=3.8',
    install_requires=['mmdet>=3.0,<3.4', 'mmengine>=0.10,<0.11', 'numpy<2', 'setuptools<70'],
)
