// Package sysmem tells how much memory the machine has free for a job, so
// the trainer can choose to save memory before it runs out.
package sysmem
