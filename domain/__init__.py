"""The pure domain of esup: no I/O, no web or database imports, time injected.

Vocabulary: see GLOSSARY.md and ../shared/DOMAIN.md.
"""
