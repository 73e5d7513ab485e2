"""Webhooks: signed, durable event deliveries to relying parties (Standard Webhooks)."""
