"""A CIFAR ResNet-18 with Keras' functional API (lesson 5's Keras exercise): ``residual_block`` is the part a
student writes. ``padding="same"`` on a strided conv is the classic Keras mistake; ``build(same_padding=True)``
plants it."""

import keras
from keras import layers


def conv_bn(x, filters, kernel, stride, same_padding=False):
    if stride > 1 and kernel > 1 and not same_padding:
        x = layers.ZeroPadding2D(kernel // 2)(x)  # 1 pixel on every side, as PyTorch's padding=1
        x = layers.Conv2D(filters, kernel, stride, padding="valid", use_bias=False)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False)(x)
    return layers.BatchNormalization(epsilon=1e-5)(x)


def residual_block(x, filters, stride, same_padding=False):
    shortcut = x
    y = layers.ReLU()(conv_bn(x, filters, 3, stride, same_padding))
    y = conv_bn(y, filters, 3, 1)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv_bn(x, filters, 1, stride)  # the projection: 1x1 conv with the block's stride, then BN
    return layers.ReLU()(layers.Add()([y, shortcut]))  # ReLU after the addition


def build(num_classes=10, same_padding=False):
    inputs = keras.Input((None, None, 3))
    x = layers.ReLU()(conv_bn(inputs, 64, 3, 1))  # the CIFAR stem: one 3x3 conv, no max-pool
    for i, filters in enumerate((64, 128, 256, 512)):
        x = residual_block(x, filters, 1 if i == 0 else 2, same_padding)
        x = residual_block(x, filters, 1, same_padding)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x))
