//! The Gemini provider against the fake.
