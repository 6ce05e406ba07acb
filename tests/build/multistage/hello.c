/* The program the multi-stage test compiles in one stage and runs from another:
 * it reports what `nemokit exec` set up (environment, user, folder, arguments). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void show(const char* label, const char* path) {
    FILE* f = fopen(path, "r");
    if (!f) return;
    char line[256];
    if (fgets(line, sizeof line, f)) printf("%s: %s", label, line);
    fclose(f);
}

int main(int argc, char** argv) {
    char cwd[4096];
    const char* greeting = getenv("GREETING");
    printf("%s from uid %d in %s\n", greeting ? greeting : "(no GREETING)", (int)getuid(), getcwd(cwd, sizeof cwd));
    for (int i = 1; i < argc; ++i) printf("arg: %s\n", argv[i]);
    show("built by", "whoami");
    if (getenv("SHOW")) show("shown", getenv("SHOW"));
    return 0;
}
