"""The report: facts gathered from the tracking store, what each section says, the
conclusions with their thresholds, every sentence in English and Spanish, and Markdown/HTML."""
