"""fer_ros: facial-expression recognition for ROS 2 robots.

The ROS-free inference core lives in :mod:`fer_ros.core`; the ROS 2 node and tools in the
other modules of this package import rclpy lazily, so the core works without ROS.

Importing fer_ros bounds what OpenCV's image decoders may allocate
(``OPENCV_IO_MAX_IMAGE_PIXELS`` / ``_WIDTH`` / ``_HEIGHT`` from :mod:`fer_ros.core.limits`,
unless already set): OpenCV reads them once, when cv2 loads, so this happens before any
fer_ros module imports cv2. ``opencv_limits_in_effect()`` says whether it worked (it cannot
when the process imported cv2 before fer_ros).
"""

import os as _os
import sys as _sys

from .core.limits import MAX_PIXELS as _MAX_PIXELS, MAX_SIDE as _MAX_SIDE

__version__ = "0.1.0"

_CV2_WAS_LOADED = "cv2" in _sys.modules
for _name, _value in (("OPENCV_IO_MAX_IMAGE_PIXELS", _MAX_PIXELS),
                      ("OPENCV_IO_MAX_IMAGE_WIDTH", _MAX_SIDE),
                      ("OPENCV_IO_MAX_IMAGE_HEIGHT", _MAX_SIDE)):
    _os.environ.setdefault(_name, str(_value))


def opencv_limits_in_effect() -> bool:
    """True when OpenCV was loaded after fer_ros set its decoder limits."""
    return not _CV2_WAS_LOADED
