"""Feedback on draft policies: consultations, their intake from front matter, and exports."""
