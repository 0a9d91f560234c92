"""What an operator runs: the ``linkway`` command, the embedded-stack supervisor and the
table registry. The only package that may import every other one."""
