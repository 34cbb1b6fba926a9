// Placeholder: being written (issue 2).
int main() { return 1; }
