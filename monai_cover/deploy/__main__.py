"""``python -m monai_cover.deploy -i <dicom folder> -o <output folder> -m <cover_seg bundle>``."""

from monai.utils import optional_import

from monai_cover.errors import install_one_line_errors

if __name__ == "__main__":
    install_one_line_errors()
    if not optional_import("monai.deploy.core")[1]:
        raise SystemExit("monai_cover.deploy needs the MONAI Deploy App SDK: pip install 'monai-cover[deploy]'")
    from monai_cover.deploy.app import CoverSegApp

    CoverSegApp().run()
