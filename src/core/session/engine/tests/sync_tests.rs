//! A synced session with the server's side played by hand.
