"""Lessons-learned layer: lesson cards, facets, browsing, similar cases, case comparison.

    from km_search.lessons import LessonStore, extract_card, facet_counts, compare
"""
from . import compare
from .cards import FACTOR_LABELS, FIELDS, Citation, Item, LessonCard, extract_card
from .examples import example_questions
from .facets import (agencies_in, facet_counts, fiscal_year, fiscal_year_range, gov40_dimensions,
                     pmqa_categories, region_of)
from .similar import similar_cases
from .store import LessonStore, lessons_path

__all__ = ["compare", "FACTOR_LABELS", "FIELDS", "Citation", "Item", "LessonCard", "extract_card", "example_questions",
           "agencies_in", "facet_counts", "fiscal_year", "fiscal_year_range", "gov40_dimensions",
           "pmqa_categories", "region_of", "similar_cases", "LessonStore", "lessons_path"]
