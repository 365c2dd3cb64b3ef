#!/usr/bin/env bash
# Make a released backbone (released/<name>/, loadable as `--pretrained <name>`): pretrain it with the cover_pretrain
# bundle, measure fine-tuning from it against scratch on a labeled task's test split
# (python -m monai_cover.label_efficiency.effect), and export the hub folder whose card quotes both.
#
#   bash scripts/release_backbones.sh cover-cxr-demo-2d [WORK_DIR]
#
# WORK_DIR (default ../release-runs/<name>) keeps the pretraining run and the fine-tuning runs; rerunning the same
# command resumes an interrupted pretraining, reuses finished fine-tunings and exports again. CPU: about 45 minutes
# of pretraining and 40 of fine-tuning on one core. The measurement reads ../shared/data (JSRT/SCR: research-only,
# never redistributed; the released weights are not trained on it, only evaluated).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bash scripts/release_backbones.sh <name> [WORK_DIR]}
work=${2:-../release-runs/$name}
mkdir -p "$work"
work=$(cd "$work" && pwd)

case "$name" in
cover-cxr-demo-2d)
    # The demo radiographs' backbone, at the JSRT/SCR headline's pretraining settings (1500 iterations: 18 images
    # after 2 held out for the endpoint error, 2 batches of 8 per epoch) and widths.
    python -m monai.bundle run --config_file bundles/cover_pretrain/configs/train.json \
        --bundle_root "$work/pretrain" --dataset_dir demo_data/nih_cxr14 --num_val 2 --seed 0 \
        --channels "[16, 32, 64, 128, 256]" --decoder_channels "[128, 64, 32, 16]" --crop_size 128 --batch_size 8 \
        --learning_rate 0.0003 --init kaiming --appearance reference --rotation_sampling reference \
        --epochs 750 --val_interval 200 --checkpoint_interval 100
    # the released weights are float16 (half the size); fine-tuning is measured from exactly those
    export=(python -m monai_cover.hub export --model_dir "$work/pretrain/models" --run_dir "$work/pretrain/outputs/2d"
        --out "released/$name" --name "$name" --license apache-2.0 --overwrite --half
        --data "the 20 NIH ChestX-ray14 radiographs of demo_data/nih_cxr14 (released by NIH without restriction on use; cite Wang et al., CVPR 2017)"
        --note "A demo backbone: pretrained on 20 radiographs so that the notebooks and the bundles have weights to start from in seconds. It is not a model for research claims; pretrain on your own archive for that (bundles/cover_pretrain).")
    "${export[@]}"
    # 1350 steps: where scratch's validation Dice stopped rising at 5% labels (benchmarks/results/jsrt_scr_headline)
    python -m monai_cover.label_efficiency.effect --task jsrt_scr --mode headline --backbone "released/$name" \
        --fraction 0.05 --steps 1350 --seeds 0 1 2 --out "$work/effect_half"
    "${export[@]}" --effect "$work/effect_half/results.json"
    ;;
*)
    echo "release_backbones.sh: unknown release '$name' (known: cover-cxr-demo-2d)" >&2
    exit 2
    ;;
esac
du -sh "released/$name"
