"""Outbound channels to end users (e-mail today; an SMS gateway would be a sibling module). The
domain core only sees the small ``Mailer`` protocol it defines; the composition root picks one."""
