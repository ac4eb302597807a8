"""What tests of every layer share: one fake Lambda context, one function loader, one in-process AWS with the
template's tables, one wait helper, and the unit tests' socket guard."""
