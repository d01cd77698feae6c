//! WebDriver sessions.
