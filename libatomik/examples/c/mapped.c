/* A C program that uses nothing but atomik.h: maps a bank — a userspace-default bank file, or a
 * /dev/atomik bank attached with BANK_OPEN — ACCUMs through the mapping and READs it back.
 * Usage: mapped BANK_FILE SLOT DELTA COUNT
 *        mapped --device NAME SLOT DELTA COUNT
 * (ACCUMs DELTA into SLOT COUNT times, then prints the slot's state in hex). Built and run by
 * libatomik/tests/c_example.rs against a bank file libatomik made, and in the VM against
 * /dev/atomik (tests/vm/extras.sh, tests/vm/guest/src/lib_suites.rs). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomik.h"

/* Maps bank NAME of /dev/atomik read-write; its size in *size. NULL on error (printed). */
static void *map_device_bank(const char *name, uint64_t *size)
{
	int fd = open(ATOMIK_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	struct atomik_bank_open o;
	memset(&o, 0, sizeof(o));
	if (strlen(name) >= ATOMIK_NAME_LEN) {
		fprintf(stderr, "%s: name too long\n", name);
		return NULL;
	}
	strcpy(o.name, name);
	o.access = ATOMIK_ACCESS_READ | ATOMIK_ACCESS_WRITE;
	if (fd < 0 || ioctl(fd, ATOMIK_IOCTL_BANK_OPEN, &o) != 0) {
		perror(name);
		return NULL;
	}
	void *base = mmap(NULL, (size_t)o.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return NULL;
	}
	/* The mapping keeps the bank; the fd is no longer needed. */
	close(fd);
	*size = o.map_size;
	return base;
}

/* Maps the bank file at path read-write; its size in *size. NULL on error (printed). */
static void *map_bank_file(const char *path, uint64_t *size)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < ATOMIK_BANK_HEADER_SIZE) {
		perror(path);
		return NULL;
	}
	void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return NULL;
	}
	close(fd);
	*size = (uint64_t)st.st_size;
	return base;
}

int main(int argc, char **argv)
{
	int device = argc == 6 && strcmp(argv[1], "--device") == 0;
	if (argc != 5 && !device) {
		fprintf(stderr, "usage: %s BANK_FILE SLOT DELTA COUNT\n       %s --device NAME SLOT DELTA COUNT\n", argv[0], argv[0]);
		return 2;
	}
	char **arg = argv + device;
	uint64_t slot = strtoull(arg[2], NULL, 0), d = strtoull(arg[3], NULL, 0);
	uint64_t count = strtoull(arg[4], NULL, 0), size = 0;
	void *base = device ? map_device_bank(arg[1], &size) : map_bank_file(arg[1], &size);
	if (base == NULL)
		return 1;
	const struct atomik_bank_header *h = base;
	/* Trust nothing before the header checks out. */
	if (h->magic != ATOMIK_BANK_MAGIC || h->abi_version != ATOMIK_ABI_VERSION ||
	    h->total_size > size || slot >= h->slot_count) {
		fprintf(stderr, "%s: not a usable ABI %u bank, or slot out of range\n", arg[1], ATOMIK_ABI_VERSION);
		return 1;
	}
	for (uint64_t n = 0; n < count; n++)
		atomik_mapped_accum(base, slot, d);
	printf("0x%016" PRIx64 "\n", atomik_mapped_read(base, slot));
	return 0;
}
