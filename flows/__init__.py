"""Prefect orchestration of the pipeline: flows and deployments only, no extraction logic."""
