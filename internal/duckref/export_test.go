package duckref

// CurrentPaths exposes currentPaths to the external tests.
var CurrentPaths = currentPaths
