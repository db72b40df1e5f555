/* Directory listings in C: the walk of a release root as columns, and verify's entry count.
 *
 * The Python walk (os.scandir, DirEntry.stat, a WalkEntry and a packed key per file) cost ~12 us a
 * file: 5.4 s of a million-file manifest build before the first byte was read, on one core per
 * process. This lists folders with the GIL released, so threads list several folders at once (a
 * cold disk gets a queue of directory reads), and hands back flat columns, never an object per file.
 * It decides what an entry is the one way the walk always has (walk.py documents it); Python keeps
 * the layout rules and the messages.
 *
 * list_tree(root, folders, recursive)
 *   root       the release root; folders: sequence of bytes, relative folders ("" is the root itself;
 *              a named folder may be a link to one, nothing below it is followed)
 *   recursive  1: descend into sub-folders in name order (the walk's order), never emitting them;
 *              0: list each folder alone, sub-folders emitted as KIND_DIR
 * returns (blob, ends, sizes, mtimes, kinds), one entry per listed entry:
 *   blob       the entries' paths relative to root, concatenated; ends: int64 end offset of each
 *   sizes      int64: st_size of files; errno for KIND_ERROR;  mtimes: int64 st_mtime in ns
 *   kinds      uint8: KIND_* below. Entries of a folder come sorted by name (bytes, as UTF-8 text sorts).
 *   A folder that cannot be opened or read is one KIND_ERROR entry naming it; the listing goes on.
 *
 * count_entries(root): the non-directory entries under root (verify's test for EXTRA files).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { KIND_FILE = 0, KIND_SYMLINK = 1, KIND_SPECIAL = 2, KIND_UNDECODABLE = 3, KIND_DIR = 4, KIND_ERROR = 5 };

#include "_buf.h"

typedef struct {
    Buf blob, ends, sizes, mtimes, kinds;
    Buf path; /* the folder being listed, relative to root, NUL-terminated past len */
    int recursive;
    int oom;
} Listing;

/* Strict UTF-8 as Python decodes it: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_valid(const unsigned char *s) {
    while (*s) {
        unsigned char c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        int more;
        unsigned char low = 0x80, high = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0) low = 0xA0;
            if (c == 0xED) high = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0) low = 0x90;
            if (c == 0xF4) high = 0x8F;
        } else {
            return 0;
        }
        if (s[1] < low || s[1] > high) return 0;
        for (int i = 2; i <= more; i++)
            if (s[i] < 0x80 || s[i] > 0xBF) return 0;
        s += more + 1;
    }
    return 1;
}

/* Append one entry: path = current folder + name (name NULL: the folder itself). */
static void emit(Listing *l, const char *name, int kind, int64_t size, int64_t mtime) {
    int failed = buf_add(&l->blob, l->path.data, l->path.len);
    if (name && l->path.len) failed |= buf_add(&l->blob, "/", 1);
    if (name) failed |= buf_add(&l->blob, name, strlen(name));
    int64_t end = (int64_t)l->blob.len;
    unsigned char k = (unsigned char)kind;
    failed |= buf_add(&l->ends, &end, 8) | buf_add(&l->sizes, &size, 8) | buf_add(&l->mtimes, &mtime, 8);
    failed |= buf_add(&l->kinds, &k, 1);
    if (failed) l->oom = 1;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_folder(Listing *l, int fd);

/* Enter sub-folder `name` of the open folder `parent` (recursive listings). */
static void descend(Listing *l, int parent, const char *name) {
    size_t base = l->path.len;
    int failed = (base && buf_add(&l->path, "/", 1)) || buf_add(&l->path, name, strlen(name) + 1);
    if (failed) {
        l->oom = 1;
        return;
    }
    l->path.len--; /* the NUL stays past the length */
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        emit(l, NULL, KIND_ERROR, errno, 0);
    else
        list_folder(l, fd);
    l->path.len = base;
    l->path.data[base] = 0;
}

/* The entries of the open folder `fd` (closed here), sorted by name. */
static void list_folder(Listing *l, int fd) {
    DIR *dir = fdopendir(fd);
    if (!dir) {
        emit(l, NULL, KIND_ERROR, errno, 0);
        close(fd);
        return;
    }
    Buf names = {0}, offsets = {0};
    struct dirent *entry;
    int failed = 0;
    for (errno = 0; (entry = readdir(dir)) != NULL; errno = 0) {
        const char *name = entry->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
        size_t at = names.len;
        if (buf_add(&names, name, strlen(name) + 1) || buf_add(&offsets, &at, sizeof at)) {
            l->oom = 1;
            break;
        }
    }
    failed = errno;
    size_t count = offsets.len / sizeof(size_t);
    char **sorted = count ? malloc(count * sizeof(char *)) : NULL;
    if (failed) {
        emit(l, NULL, KIND_ERROR, failed, 0);
    } else if (count && !sorted) {
        l->oom = 1;
    } else {
        for (size_t i = 0; i < count; i++) sorted[i] = names.data + ((size_t *)offsets.data)[i];
        qsort(sorted, count, sizeof(char *), by_name);
        for (size_t i = 0; i < count && !l->oom; i++) {
            const char *name = sorted[i];
            struct stat st;
            if (!utf8_valid((const unsigned char *)name)) {
                emit(l, name, KIND_UNDECODABLE, 0, 0);
            } else if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                emit(l, name, KIND_ERROR, errno, 0);
            } else if (S_ISDIR(st.st_mode)) {
                if (l->recursive)
                    descend(l, dirfd(dir), name);
                else
                    emit(l, name, KIND_DIR, 0, 0);
            } else {
                int kind = S_ISREG(st.st_mode) ? KIND_FILE : S_ISLNK(st.st_mode) ? KIND_SYMLINK : KIND_SPECIAL;
                int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
                emit(l, name, kind, kind == KIND_FILE ? (int64_t)st.st_size : 0, kind == KIND_FILE ? mtime : 0);
            }
        }
    }
    free(sorted);
    free(names.data);
    free(offsets.data);
    closedir(dir);
}

/* Non-directory entries under the open folder `fd` (which this closes), real subfolders included;
 * `path` holds the folder's path and, on failure, the path of the folder that could not be listed. */
static int64_t count_under(int fd, Buf *path) {
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -1;
    }
    int64_t count = 0;
    size_t base = path->len;
    struct dirent *entry;
    for (errno = 0; (entry = readdir(dir)) != NULL; errno = 0) {
        const char *name = entry->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
        int is_dir = entry->d_type == DT_DIR;
        if (entry->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if (!is_dir) {
            count++;
            continue;
        }
        path->len = base;
        if (buf_add(path, "/", 1) || buf_add(path, name, strlen(name) + 1)) {
            errno = ENOMEM;
            break;
        }
        path->len--; /* keep the NUL terminator out of the length */
        int sub = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int64_t below = sub < 0 ? -1 : count_under(sub, path);
        if (below < 0) {
            int saved = errno;
            closedir(dir);
            errno = saved;
            return -1; /* path names the failing folder */
        }
        count += below;
    }
    int failed = errno;
    closedir(dir);
    path->len = base;
    if (failed) {
        errno = failed;
        return -1;
    }
    path->data[base] = 0;
    return count;
}

static PyObject *count_entries(PyObject *self, PyObject *args) {
    PyObject *root;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &root)) return NULL;
    Buf path = {0};
    int64_t count = -1;
    int error = ENOMEM;
    if (buf_add(&path, PyBytes_AS_STRING(root), (size_t)PyBytes_GET_SIZE(root) + 1) == 0) {
        path.len--;
        Py_BEGIN_ALLOW_THREADS
        int fd = open((const char *)path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        count = fd < 0 ? -1 : count_under(fd, &path);
        error = errno;
        Py_END_ALLOW_THREADS
    }
    PyObject *result = NULL;
    if (count >= 0) {
        result = PyLong_FromLongLong(count);
    } else if (path.data) {
        PyObject *where = PyUnicode_DecodeFSDefaultAndSize((const char *)path.data, (Py_ssize_t)path.len);
        errno = error;
        if (where) PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, where);
        Py_XDECREF(where);
    } else {
        PyErr_NoMemory();
    }
    free(path.data);
    Py_DECREF(root);
    return result;
}

static PyObject *as_bytes(const Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len); }

static PyObject *list_tree(PyObject *self, PyObject *args) {
    PyObject *root, *folders_arg;
    int recursive;
    if (!PyArg_ParseTuple(args, "O&Op", PyUnicode_FSConverter, &root, &folders_arg, &recursive)) return NULL;
    PyObject *folders = PySequence_Tuple(folders_arg), *result = NULL;
    Listing l;
    memset(&l, 0, sizeof l);
    l.recursive = recursive;
    if (!folders) goto done;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(folders); i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(folders, i))) {
            PyErr_SetString(PyExc_TypeError, "folders must be bytes");
            goto done;
        }
    }
    const char *top = PyBytes_AS_STRING(root);
    Py_BEGIN_ALLOW_THREADS
    int rootfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(folders) && !l.oom; i++) {
        PyObject *folder = PyTuple_GET_ITEM(folders, i);
        l.path.len = 0;
        if (buf_add(&l.path, PyBytes_AS_STRING(folder), (size_t)PyBytes_GET_SIZE(folder) + 1)) {
            l.oom = 1;
            break;
        }
        l.path.len--;
        int fd = rootfd < 0 ? -1 : l.path.len ? openat(rootfd, l.path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                              : dup(rootfd);
        if (fd < 0)
            emit(&l, NULL, KIND_ERROR, errno, 0);
        else
            list_folder(&l, fd);
    }
    if (rootfd >= 0) close(rootfd);
    Py_END_ALLOW_THREADS
    if (l.oom) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_BuildValue("(NNNNN)", as_bytes(&l.blob), as_bytes(&l.ends), as_bytes(&l.sizes), as_bytes(&l.mtimes),
                           as_bytes(&l.kinds));
done:
    free(l.blob.data);
    free(l.ends.data);
    free(l.sizes.data);
    free(l.mtimes.data);
    free(l.kinds.data);
    free(l.path.data);
    Py_XDECREF(folders);
    Py_DECREF(root);
    return result;
}

static PyMethodDef methods[] = {
    {"list_tree", list_tree, METH_VARARGS, "List folders (recursively or not) as columns, GIL released."},
    {"count_entries", count_entries, METH_VARARGS, "Count the non-directory entries under a folder, GIL released."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "release._listing", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__listing(void) { return PyModule_Create(&module); }
