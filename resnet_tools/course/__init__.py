"""The course wing: what teachers and students use beside the notebooks in ``course/``. ``check_model`` checks a
ResNet someone wrote in torch or paddle against a zoo model, stage by stage (an exercise's checker cell, an
autograder's test)."""

from resnet_tools.course.check import CheckReport, Finding, check_model, stage_name

__all__ = ["CheckReport", "Finding", "check_model", "stage_name"]
