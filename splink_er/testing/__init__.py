"""Test helpers that ship with the package: a loopback server that speaks the LLM providers' REST shapes."""

from .fake_llm import FakeLLMServer, similarity_brain

__all__ = ["FakeLLMServer", "similarity_brain"]
