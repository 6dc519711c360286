"""Instruction data: sources with schema adapters, and mixture specs."""
