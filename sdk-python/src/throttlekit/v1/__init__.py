"""Generated from proto/throttlekit/v1/throttlekit.proto by scripts/gen-python.sh; do not edit."""
