"""What ``fer-bag evaluate`` needs besides bag files: the rclpy session, the node process and
its diagnostics, parameter checks, refusal reasons, and the report (statistics, plots, HTML)."""
