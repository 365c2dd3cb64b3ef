"""MONAI Deploy application of cover_seg (optional extra ``deploy``): see :mod:`monai_cover.deploy.app`."""
