# fer_ros developer targets. `make test` and `make demo` run `make setup` first (idempotent:
# minutes on a fresh clone, about two seconds when nothing changed).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

# The environment every ROS process of ours gets: the venv as the ament prefix, the Fast DDS
# large-image profile (2.x and 3.x variable names), Fast DDS as the rmw.
export AMENT_PREFIX_PATH := $(abspath $(VENV))$(if $(AMENT_PREFIX_PATH),:$(AMENT_PREFIX_PATH))
export FASTRTPS_DEFAULT_PROFILES_FILE := $(abspath config/fastdds_large_images.xml)
export FASTDDS_DEFAULT_PROFILES_FILE := $(abspath config/fastdds_large_images.xml)
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp

.PHONY: help setup test demo msgs models clean

help:
	@echo "make setup   create/update .venv: pinned ROS 2 Jazzy + torch wheels, fer_msgs, fer_ros, models"
	@echo "make test    setup, then the whole test suite (pytest)"
	@echo "make demo    setup, then emotion node + image source + sink over DDS on a video (INPUT=..., OUT=out, ISA=avx2|both)"
	@echo "make msgs    rebuild fer_msgs into .venv"
	@echo "make models  fetch/verify the model files (fer-models fetch)"
	@echo "make clean   remove build outputs (keeps .venv)"

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q test

# INPUT: video, image, image folder or camera index (default: ../shared/samples/fer_woman2.mp4)
INPUT ?=
OUT ?= out
demo: setup
	$(PY) -m fer_ros.demo $(if $(INPUT),--input "$(INPUT)") $(if $(ISA),--isa $(ISA)) --out "$(OUT)" $(DEMO_ARGS)

msgs:
	@bash scripts/build_msgs.sh $(VENV)

models: setup
	$(VENV)/bin/fer-models fetch

clean:
	rm -rf build log install .pytest_cache
