"""Measuring cleanset: the robustness benchmark (transforms, recall, false matches, cost)."""
