// Package jobs runs a node's training jobs in the background, one at a time,
// and keeps each job's state and progress events for the API and the web
// page to read and follow. The HTTP layer only turns requests into jobs.
package jobs
