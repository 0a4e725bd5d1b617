package Local::Tally;

use strict;
use warnings;
use Carp qw(croak);

our $VERSION = '0.01';

# Counts words in files; written for a test.
sub new {
    my ($class, %args) = @_;
    my $self = bless { counts => {}, min_length => $args{min_length} // 1 }, $class;
    return $self;
}

sub add_file {
    my ($self, $path) = @_;
    open my $fh, '<', $path or croak "cannot open $path: $!";
    while (my $line = <$fh>) {
        chomp $line;
        for my $word (split /\W+/, lc $line) {
            next if length($word) < $self->{min_length};
            $self->{counts}{$word}++;
        }
    }
    close $fh;
    return $self;
}

sub top {
    my ($self, $n) = @_;
    my $counts = $self->{counts};
    my @words = sort { $counts->{$b} <=> $counts->{$a} || $a cmp $b } keys %$counts;
    return @words[0 .. ($n < @words ? $n : scalar @words) - 1];
}

1;

__END__

=head1 NAME

Local::Tally - count the words of text files
