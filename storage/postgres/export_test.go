package postgres

// RefreshStatistics is the statistics refresh the store runs every analyzeEvery.
var RefreshStatistics = (*Store).refreshStatistics
