"""Installers, their areas, products and cycle caps."""
