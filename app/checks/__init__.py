"""Task checks: run them in the attendee's sandbox, stream their progress, store the attempts."""
