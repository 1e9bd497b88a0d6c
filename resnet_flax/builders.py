"""One builder per zoo model (Flax NNX), as torchvision and keras.applications name them.

Generated from ``resnet_spec/resnets.yaml`` by ``make builders`` (``resnet_spec/codegen.py``); a test fails
when this file differs. Options as in :func:`create_model`, typed by ``ModelOptions``."""

from __future__ import annotations

from typing import Unpack

from resnet_flax.model import ResNet, create_model
from resnet_spec.codegen import ModelOptions


def resnet18(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet18`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet18", **options)


def resnet34(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet34`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet34", **options)


def resnet50(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet50`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet50", **options)


def resnet101(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet101`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet101", **options)


def resnet152(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet152`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet152", **options)


def resnext50_32x4d(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnext50_32x4d`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnext50_32x4d", **options)


def resnext101_32x8d(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnext101_32x8d`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnext101_32x8d", **options)


def resnext101_64x4d(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnext101_64x4d`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnext101_64x4d", **options)


def wide_resnet50_2(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``wide_resnet50_2`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("wide_resnet50_2", **options)


def wide_resnet101_2(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``wide_resnet101_2`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("wide_resnet101_2", **options)


def resnet50v1(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet50v1`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet50v1", **options)


def resnet101v1(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet101v1`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet101v1", **options)


def resnet152v1(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet152v1`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet152v1", **options)


def resnet18v2(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet18v2`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet18v2", **options)


def resnet34v2(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet34v2`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet34v2", **options)


def resnet50v2(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet50v2`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet50v2", **options)


def resnet101v2(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet101v2`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet101v2", **options)


def resnet152v2(**options: Unpack[ModelOptions]) -> ResNet:
    """The zoo's ``resnet152v2`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""
    return create_model("resnet152v2", **options)


#: Every builder, in the YAML's order (``resnet_spec.list_models()``).
__all__ = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "resnet50v1",
    "resnet101v1",
    "resnet152v1",
    "resnet18v2",
    "resnet34v2",
    "resnet50v2",
    "resnet101v2",
    "resnet152v2",
]
