"""The cover_label app's tasks: retraining (:mod:`lib.trainer`) and choosing the next image (:mod:`lib.strategy`)."""
