// SPDX-License-Identifier: GPL-2.0
/*
 * The IPC namespace of the current task, for kmod/ipc_ns.rs. Written in C because it reads
 * current->nsproxy: bindgen's layout of task_struct does not match the one GCC compiles in
 * every configuration, so no task_struct field is read from Rust.
 */
#include <linux/ipc_namespace.h>
#include <linux/ns_common.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>

/* Called from ipc_ns.rs only (its extern block is the other declaration). */
struct ipc_namespace *atomik_ipc_ns_get_current(void);
struct ipc_namespace *atomik_ipc_ns_get(struct ipc_namespace *ns);
void atomik_ipc_ns_put(struct ipc_namespace *ns);
bool atomik_ipc_ns_active(struct ipc_namespace *ns);

/*
 * A counted reference to the caller's IPC namespace (NULL in a kernel without System V IPC
 * and POSIX message queues, which has a single one). Only current changes its own nsproxy,
 * and it is not NULL before the task exits, so no lock is needed.
 */
struct ipc_namespace *atomik_ipc_ns_get_current(void)
{
	return get_ipc_ns(current->nsproxy->ipc_ns);
}

/* Another counted reference to ns (which the caller holds one to). */
struct ipc_namespace *atomik_ipc_ns_get(struct ipc_namespace *ns)
{
	return get_ipc_ns(ns);
}

/* Drops a reference taken by one of the functions above. */
void atomik_ipc_ns_put(struct ipc_namespace *ns)
{
	if (ns)
		put_ipc_ns(ns);
}

/*
 * Whether ns is still in use: by a task (through its nsproxy), an open /proc/PID/ns/ipc or a
 * bind mount of it. Once it is not, nobody can enter it again.
 */
bool atomik_ipc_ns_active(struct ipc_namespace *ns)
{
	return !ns || ns_ref_active_read(ns) > 0;
}
