"""Size limits for every image fer_ros decodes or converts (no imports: read before cv2 loads).

``fer_ros/__init__.py`` exports ``OPENCV_IO_MAX_IMAGE_PIXELS`` from these before OpenCV is
imported, so that even a decoder whose header fer_ros does not check cannot allocate more.
"""

MAX_SIDE = 8192  # pixels per side
MAX_PIXELS = 7680 * 4320  # 8K UHD, 33.2 Mpx: 99.5 MB as BGR, the largest frame accepted
