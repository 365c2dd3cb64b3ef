"""Benchmark suite: does COVER pretraining beat scratch and the baselines on a labeled task? (see __main__)."""

from monai_cover.label_efficiency.report import summarise, write_report
from monai_cover.label_efficiency.runner import BenchmarkError, BenchmarkRunner
from monai_cover.label_efficiency.splits import fraction_datalist, labeled_cases, pretrain_datalist
from monai_cover.label_efficiency.tasks import Task, load_task

__all__ = ["BenchmarkError", "BenchmarkRunner", "Task", "fraction_datalist", "labeled_cases", "load_task",
           "pretrain_datalist", "summarise", "write_report"]
