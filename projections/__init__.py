"""Read models, one module per view, each owning its tables and its tracking position.

The views (warnings 预警纠错, live monitoring 实时监控, performance 绩效, audit samples 抽查) follow
the ledger's notification log; they arrive with the supervision-projections issue.
"""
